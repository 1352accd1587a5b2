//! `rapport-agent replay`: a trace through the [`Observer`], printed as JSON lines. Any format
//! [`crate::can::trace`] reads (candump always; ASC, BLF, TRC, pcap with feature `traces`), its
//! channels named by the config's buses.
//!
//! Owns: turning trace timestamps into the decoder's monotonic time and the printed `t_ms`,
//! bad lines as warnings, the output rate limit, and the summary. Does not own decoding
//! ([`crate::observe`]) nor argument parsing (`main.rs`).
//!
//! Time: `t_ms` is the trace's absolute time in Unix ms when the line has an absolute
//! timestamp, else ms since the first frame. Lines without a timestamp take the previous
//! frame's time (a trace without any reads as one instant, so ISO-TP messages that never
//! complete are reported when the next message starts or at the end of the trace).
//!
//! Rate limit: odometer readings are printed each time the accepted value changes (the
//! observer only reports changes); speed and engine hours when the value changed *and* at
//! least one second has passed since the last one printed for that source, so a 100 Hz
//! broadcast prints at most once a second. Park, DTC, lamp and warning observations are
//! already changes and are all printed.
//!
//! Prompts: unless turned off, the config's rules run over the observations with the trace's
//! own time as the clock, starting from an empty memory (no service history: a schedule item
//! counts from 0 km and the delivery date), and a `{"kind":"prompt",…}` line is printed each
//! time a prompt would reach the screen — gated as on the car (parked or stopped, caps, quiet
//! hours). A trace with relative timestamps has no date; its time is anchored at the moment
//! the replay starts.

use core::time::Duration;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use crate::can::candump::{Timestamp, TraceStats};
use crate::can::source::TimedFrame;
use crate::can::trace::{self, ChannelMap, ReadError};
use crate::config::Loaded;
use crate::observe::json::{RateLimit, write_observation};
use crate::observe::{Observation, Observer, WarningKind};

/// Replay options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Print a final summary line.
    pub summary: bool,
    /// Do not run the rules (no prompt lines).
    pub no_prompts: bool,
}

/// What a replay saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Trace lines, frames, skipped and bad lines.
    pub trace: TraceStats,
    /// Observations printed, by kind.
    pub observations: BTreeMap<&'static str, u64>,
    /// Warnings raised (printed or not), by kind.
    pub warnings: BTreeMap<&'static str, u64>,
    /// Frames from an interface no `[[can.buses]]` entry names (several buses only), ignored.
    pub unrouted_frames: u64,
}

impl Summary {
    /// All warnings.
    pub fn warning_total(&self) -> u64 {
        self.warnings.values().sum()
    }
}

/// Replays `trace` with the config `loaded`, writing one JSON line per observation to `out`
/// (and a summary line if asked). Whatever the trace holds, this does not fail on it: bad
/// lines and malformed traffic become warning lines.
///
/// # Errors
/// [`crate::Error::Io`] only when writing to `out` fails.
pub fn run<R: BufRead, W: Write>(
    loaded: &Loaded,
    trace: R,
    out: &mut W,
    options: Options,
) -> Result<Summary, crate::Error> {
    let io = |source| crate::Error::Io {
        context: "writing the replay output".into(),
        source,
    };
    let mut observer = Observer::new(&crate::settings::observer(loaded));
    let mut routes = crate::settings::BusRoutes::new(&loaded.config);
    let mut opening = Vec::new();
    let mut reader = match trace::open(trace, ChannelMap::from_config(&loaded.config.can)) {
        Ok(r) => Some(r),
        Err(err) => {
            // Not a trace this build reads: one warning line, then the (empty) summary.
            observer.warn(WarningKind::TraceLine, err.to_string(), &mut opening);
            None
        }
    };
    let mut observations = Vec::new();
    let mut origin: Option<Duration> = None;
    let (mut at, mut t_ms) = (Duration::ZERO, 0u64);

    let mut step = Step {
        limit: RateLimit::default(),
        summary: Summary::default(),
        line: String::with_capacity(256),
        prompts: (!options.no_prompts).then(|| PromptTrack::new(loaded)),
    };
    let anchor = crate::clock::wall_now().as_millis();
    let mut relative = true;

    let mut ended = false;
    if !opening.is_empty() {
        step.write(&opening, 0, at, anchor, out).map_err(io)?;
    }
    loop {
        observations.clear();
        match reader.as_mut().and_then(Iterator::next) {
            None => break,
            Some(Ok(tf)) => {
                if let Some(ts) = tf.timestamp {
                    let d = ts.as_duration();
                    let first = *origin.get_or_insert(d);
                    // Monotonic for the decoders even if the trace steps back.
                    at = at.max(d.saturating_sub(first));
                    t_ms = match ts {
                        Timestamp::Absolute(_) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                        Timestamp::Relative(_) => u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
                    };
                }
                let wall = match tf.timestamp {
                    Some(Timestamp::Absolute(_)) => {
                        relative = false;
                        Some(rapport_shared::Timestamp::from_millis(t_ms))
                    }
                    _ => None,
                };
                let timed = TimedFrame {
                    frame: tf.frame,
                    at,
                    wall,
                };
                match routes.route(tf.interface.as_str()) {
                    crate::settings::Route::Bus(bus) => {
                        observer.on_bus_frame(bus, &timed, &mut observations);
                    }
                    crate::settings::Route::Ignore(warning) => {
                        if let Some(what) = warning {
                            observer.warn(WarningKind::TraceLine, what, &mut observations);
                        }
                    }
                }
            }
            Some(Err(ReadError::Record { at, reason, .. })) => {
                observer.warn(
                    WarningKind::TraceLine,
                    format!("{at}: {reason}"),
                    &mut observations,
                );
            }
            Some(Err(err)) => {
                // The reader failed (I/O, or a trace broken past reading on): report it like a
                // bad line, then stop reading.
                observer.warn(WarningKind::TraceLine, err.to_string(), &mut observations);
                ended = true;
            }
        }
        let wall = if relative {
            anchor.saturating_add(t_ms)
        } else {
            t_ms
        };
        step.write(&observations, t_ms, at, wall, out).map_err(io)?;
        if ended {
            break;
        }
    }
    observations.clear();
    observer.finish(at, &mut observations);
    let wall = if relative {
        anchor.saturating_add(t_ms)
    } else {
        t_ms
    };
    step.write(&observations, t_ms, at, wall, out).map_err(io)?;
    let mut summary = step.summary;

    summary.trace = reader
        .as_ref()
        .map(trace::Reader::stats)
        .unwrap_or_default();
    summary.unrouted_frames = routes.unrouted;
    for (kind, n) in observer.warning_counts() {
        if n > 0 {
            summary.warnings.insert(kind.as_str(), n);
        }
    }
    if options.summary {
        writeln!(out, "{}", summary_line(&summary)).map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(summary)
}

/// What one step of the replay prints: the observations' lines (rate-limited), then the
/// prompts the rules would show at `wall` (ms).
struct Step {
    limit: RateLimit,
    summary: Summary,
    line: String,
    prompts: Option<PromptTrack>,
}

impl Step {
    fn write<W: Write>(
        &mut self,
        observations: &[Observation],
        t_ms: u64,
        at: Duration,
        wall: u64,
        out: &mut W,
    ) -> std::io::Result<()> {
        emit(
            observations,
            t_ms,
            at,
            &mut self.limit,
            &mut self.summary,
            &mut self.line,
            out,
        )?;
        if let Some(p) = &mut self.prompts {
            p.feed(observations, wall, &mut self.summary, out)?;
        }
        Ok(())
    }
}

/// The rules over a trace: prompt lines when a prompt would reach the screen.
struct PromptTrack {
    cfg: crate::rules::Settings,
    rules: Option<crate::rules::Rules>,
    next_tick: rapport_shared::Timestamp,
    line: String,
}

impl PromptTrack {
    fn new(loaded: &Loaded) -> Self {
        Self {
            cfg: crate::settings::rules(&loaded.config),
            rules: None,
            next_tick: rapport_shared::Timestamp::EPOCH,
            line: String::new(),
        }
    }

    /// Runs the rules over `observations` at `now_ms` and prints the prompts they show.
    fn feed<W: Write>(
        &mut self,
        observations: &[Observation],
        now_ms: u64,
        summary: &mut Summary,
        out: &mut W,
    ) -> std::io::Result<()> {
        let now = rapport_shared::Timestamp::from_millis(now_ms);
        let mut changes = Vec::new();
        let rules = match &mut self.rules {
            Some(r) => r,
            None => {
                let (r, ch) = crate::rules::Rules::new(
                    self.cfg.clone(),
                    crate::memory::Memory::default(),
                    now,
                );
                changes.push(ch);
                self.rules.insert(r)
            }
        };
        for o in observations {
            changes.push(rules.on_observation(o, now));
        }
        if now >= self.next_tick {
            self.next_tick = now.saturating_add(Duration::from_secs(1));
            changes.push(rules.tick(now));
        }
        for ch in &changes {
            for (at, body) in &ch.outbox {
                let rapport_shared::v1::uplink::RecordBody::Prompt(ev) = body else {
                    continue;
                };
                if ev.action != rapport_shared::v1::uplink::PromptAction::Shown {
                    continue;
                }
                let Some(p) = rules.memory().prompts.get(&ev.prompt) else {
                    continue;
                };
                *summary.observations.entry("prompt").or_default() += 1;
                self.line.clear();
                crate::observe::json::write_prompt(&mut self.line, at.as_millis(), p);
                self.line.push('\n');
                out.write_all(self.line.as_bytes())?;
            }
        }
        Ok(())
    }
}

fn emit<W: Write>(
    observations: &[Observation],
    t_ms: u64,
    at: Duration,
    limit: &mut RateLimit,
    summary: &mut Summary,
    line: &mut String,
    out: &mut W,
) -> std::io::Result<()> {
    for o in observations {
        if !limit.admit(o, at) {
            continue;
        }
        *summary.observations.entry(o.kind()).or_default() += 1;
        line.clear();
        write_observation(line, t_ms, o);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// The `--summary` line.
pub(crate) fn summary_line(s: &Summary) -> String {
    let map =
        |m: &BTreeMap<&'static str, u64>| serde_json::to_string(m).unwrap_or_else(|_| "{}".into());
    // Unrouted frames only when there are some (a single-bus config never has any).
    let unrouted = if s.unrouted_frames > 0 {
        format!(",\"unrouted_frames\":{}", s.unrouted_frames)
    } else {
        String::new()
    };
    format!(
        "{{\"kind\":\"summary\",\"lines\":{},\"frames\":{},\"bad_lines\":{},\"observations\":{},\"warnings\":{},\"warnings_by_kind\":{}{unrouted}}}",
        s.trace.lines,
        s.trace.frames,
        s.trace.bad,
        map(&s.observations),
        s.warning_total(),
        map(&s.warnings)
    )
}
