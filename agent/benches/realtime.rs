//! Allocations per frame on the decode path and CPU share while replaying a saturated bus in
//! real time (issue 3, part 8). A plain binary (`harness = false`), not criterion: one run,
//! figures printed.
//!
//! 1. Allocations per frame: the workspace forbids `unsafe_code`, so a counting
//!    `#[global_allocator]` cannot be written here; instead `benches/allocs.sh` runs this
//!    binary under `valgrind --tool=dhat` in two phases (see [`allocation_phase`]) and
//!    divides the difference in allocated blocks by the frames decoded in between.
//! 2. The same kind of traffic written as a `candump -l` trace in memory, replayed with
//!    `TraceSource` at `Pacing::Original { speedup: 1.0 }` on a current-thread tokio runtime
//!    into an `Observer`; CPU time (this thread's `/proc/thread-self/schedstat`, and the
//!    process's utime+stime from `/proc/self/stat`) over wall time.
//!
//! Run: `cargo bench -p rapport-agent --bench realtime` (about 15 s), and
//! `agent/benches/allocs.sh` for the allocation count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use rapport_agent::can::candump::{self, write_log_line};
use rapport_agent::can::replay::{Pacing, TraceSource};
use rapport_agent::can::source::FrameSource as _;
use rapport_agent::observe::{Observation, Observer};

/// Seconds of mixed traffic for the allocation count, and how many of them warm up.
const ALLOC_SECS: u64 = 20;
const WARM_UP_SECS: u64 = 5;
/// Seconds of the real-time replay.
const REPLAY_SECS: u64 = 12;

/// Decodes the mixed trace for the allocation count, run under `valgrind --tool=dhat` by
/// `benches/allocs.sh`: phase `warm` decodes only the warm-up part, `all` the rest too (only
/// frames of `kind` after the warm-up, when given); the difference of the two runs' block
/// counts is what the measured frames allocated. Both phases build the same trace, so its
/// own allocations cancel out.
fn allocation_phase(phase: &str, kind: Option<&str>) {
    let loaded = common::loaded();
    let frames = common::mixed(ALLOC_SECS);
    let warm_up = Duration::from_secs(WARM_UP_SECS);
    let split = frames.partition_point(|f| f.at < warm_up);
    let (warm, measured) = frames.split_at(split);
    let mut observer = Observer::new(&rapport_agent::settings::observer(&loaded));
    let mut out: Vec<Observation> = Vec::with_capacity(64);
    for f in warm {
        out.clear();
        observer.on_frame(f, &mut out);
    }
    let mut n = 0usize;
    if phase == "all" {
        for f in measured {
            if kind.is_some_and(|k| common::kind_of(&f.frame).name() != k) {
                continue;
            }
            out.clear();
            observer.on_frame(f, &mut out);
            n += 1;
        }
    }
    println!("measured_frames={n}");
    let warnings: Vec<_> = observer.warning_counts().filter(|(_, c)| *c > 0).collect();
    println!("warnings={warnings:?}");
}

/// This thread's time on CPU in ns (first field of `/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The process's utime + stime in clock ticks (fields 14 and 15 of `/proc/self/stat`).
fn process_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let rest = s.get(s.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field n is at index n - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second of `/proc/self/stat`: `USER_HZ`, 100 on every Linux ABI rapport
/// targets (x86-64, aarch64, armv7); read without libc.
const USER_HZ: f64 = 100.0;

/// The mixed traffic as a `candump -l` trace (absolute times, as a recorder writes them).
fn trace_text(secs: u64) -> (String, usize) {
    let frames = common::mixed(secs);
    let base = Duration::from_secs(1_700_000_000);
    let mut text = String::with_capacity(frames.len() * 48);
    for f in &frames {
        write_log_line(
            &mut text,
            candump::Timestamp::Absolute(base + f.at),
            "can0",
            &f.frame,
        )
        .unwrap();
        text.push('\n');
    }
    (text, frames.len())
}

struct Run {
    frames: u64,
    observations: u64,
    wall: Duration,
    thread_cpu: Option<Duration>,
    process_cpu: Option<Duration>,
}

fn replay(text: &str, pacing: Pacing) -> Run {
    let loaded = common::loaded();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut observer = Observer::new(&rapport_agent::settings::observer(&loaded));
        let mut out: Vec<Observation> = Vec::with_capacity(64);
        let mut source = TraceSource::new(text.as_bytes(), pacing);
        let (mut frames, mut observations) = (0u64, 0u64);
        let (cpu0, ticks0) = (thread_cpu_ns(), process_ticks());
        let wall0 = Instant::now();
        while let Some(tf) = source.recv().await.unwrap() {
            out.clear();
            observer.on_frame(&tf, &mut out);
            frames += 1;
            observations += out.len() as u64;
        }
        let wall = wall0.elapsed();
        let thread_cpu = thread_cpu_ns()
            .zip(cpu0)
            .map(|(b, a)| Duration::from_nanos(b.saturating_sub(a)));
        let process_cpu = process_ticks()
            .zip(ticks0)
            .map(|(b, a)| Duration::from_secs_f64(b.saturating_sub(a) as f64 / USER_HZ));
        Run {
            frames,
            observations,
            wall,
            thread_cpu,
            process_cpu,
        }
    })
}

fn report(name: &str, run: &Run) {
    let share = |cpu: Option<Duration>| {
        cpu.map_or_else(
            || "n/a".to_string(),
            |c| {
                format!(
                    "{:.2} % ({:.3} s)",
                    100.0 * c.as_secs_f64() / run.wall.as_secs_f64(),
                    c.as_secs_f64()
                )
            },
        )
    };
    println!(
        "{name}: {} frames ({} observations) in {:.3} s wall = {:.0} frames/s; \
         CPU thread {}, process {}",
        run.frames,
        run.observations,
        run.wall.as_secs_f64(),
        run.frames as f64 / run.wall.as_secs_f64(),
        share(run.thread_cpu),
        share(run.process_cpu),
    );
}

fn main() {
    // `cargo bench` passes `--bench` (and any criterion options); this binary takes none.
    if let Ok(phase) = std::env::var("RAPPORT_BENCH_ALLOC_PHASE") {
        let kind = std::env::var("RAPPORT_BENCH_ALLOC_KIND")
            .ok()
            .filter(|k| !k.is_empty());
        return allocation_phase(&phase, kind.as_deref());
    }
    let (text, n) = trace_text(REPLAY_SECS);
    println!(
        "\n## Replay of a {REPLAY_SECS} s candump -l trace, {n} frames ({:.0} frames/s)",
        n as f64 / REPLAY_SECS as f64
    );
    let fast = replay(&text, Pacing::AsFastAsPossible);
    report("as fast as possible", &fast);
    let real = replay(&text, Pacing::Original { speedup: 1.0 });
    report("real time (speedup 1.0)", &real);
}
