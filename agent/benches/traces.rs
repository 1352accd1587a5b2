//! Reading the same frames as candump, ASC and BLF, in frames per second on one core.
//!
//! Writes `TRACES_BENCH_FRAMES` frames (default 1,000,000: 11- and 29-bit ids, 8 data bytes,
//! 100 µs apart, two channels) into `target/traces-bench/big.{log,asc,blf}` with small writers
//! of its own (ASC lines as CANoe writes them, BLF as zlib-compressed 128 KiB containers of
//! CAN_MESSAGE objects, as Vector tools and python-can write them), then reads each through
//! `can::trace::open` three times and prints the best run. The files stay for comparing with
//! python-can (see docs/performance.md, "Trace formats").
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fmt::Write as _;
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rapport_agent::can::candump::{Timestamp, format_log_line};
use rapport_agent::can::trace::{self, ChannelMap};

/// 2023-11-14 22:13:20 UTC.
const START_SECS: u64 = 1_700_000_000;

struct Frame {
    t: Duration,
    channel: u8,
    id: u32,
    extended: bool,
    data: [u8; 8],
}

fn frames(n: usize) -> impl Iterator<Item = Frame> {
    (0..n).map(|i| {
        let extended = i % 3 == 0;
        let id = if extended {
            0x18FE_0000 | (i as u32 & 0xFFFF)
        } else {
            (i as u32 * 7) & 0x7FF
        };
        let b = i as u64;
        Frame {
            t: Duration::from_micros(b * 100),
            channel: 1 + (i % 2) as u8,
            id,
            extended,
            data: (b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes(),
        }
    })
}

fn write_candump(path: &Path, n: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for f in frames(n) {
        let frame = rapport_agent::can::CanFrame::from_raw(f.id, f.extended, &f.data).unwrap();
        let ts = Timestamp::Absolute(Duration::from_secs(START_SECS) + f.t);
        let iface = if f.channel == 1 { "can0" } else { "can1" };
        writeln!(out, "{}", format_log_line(ts, iface, &frame)).unwrap();
    }
}

fn write_asc(path: &Path, n: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(
        b"date Tue Nov 14 22:13:20.000 2023\nbase hex  timestamps absolute\ninternal events logged\n\
          // version 9.0.0\nBegin Triggerblock Tue Nov 14 22:13:20.000 2023\n   0.000000 Start of measurement\n",
    )
    .unwrap();
    let mut line = String::with_capacity(128);
    for f in frames(n) {
        line.clear();
        let id = if f.extended {
            format!("{:X}x", f.id)
        } else {
            format!("{:X}", f.id)
        };
        write!(
            line,
            "{:>11.6} {}  {:<15} Rx   d 8",
            f.t.as_secs_f64(),
            f.channel,
            id
        )
        .unwrap();
        for b in f.data {
            write!(line, " {b:02X}").unwrap();
        }
        line.push_str("  Length = 240015 BitCount = 124 ID = 0\n");
        out.write_all(line.as_bytes()).unwrap();
    }
    out.write_all(b"End TriggerBlock\n").unwrap();
}

fn write_blf(path: &Path, n: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut header = [0u8; 144];
    header[..4].copy_from_slice(b"LOGG");
    header[4..8].copy_from_slice(&144u32.to_le_bytes());
    for (i, v) in [2023u16, 11, 2, 14, 22, 13, 20, 0].iter().enumerate() {
        header[40 + 2 * i..42 + 2 * i].copy_from_slice(&v.to_le_bytes());
    }
    out.write_all(&header).unwrap();
    let mut chunk: Vec<u8> = Vec::with_capacity(128 * 1024 + 64);
    let flush = |chunk: &mut Vec<u8>, out: &mut std::io::BufWriter<std::fs::File>| {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(chunk).unwrap();
        let data = z.finish().unwrap();
        let size = 32 + data.len() as u32;
        out.write_all(b"LOBJ").unwrap();
        out.write_all(&16u16.to_le_bytes()).unwrap();
        out.write_all(&1u16.to_le_bytes()).unwrap();
        out.write_all(&size.to_le_bytes()).unwrap();
        out.write_all(&10u32.to_le_bytes()).unwrap();
        out.write_all(&2u16.to_le_bytes()).unwrap();
        out.write_all(&[0; 6]).unwrap();
        out.write_all(&(chunk.len() as u32).to_le_bytes()).unwrap();
        out.write_all(&[0; 4]).unwrap();
        out.write_all(&data).unwrap();
        out.write_all(&[0; 3][..(size % 4) as usize]).unwrap();
        chunk.clear();
    };
    for f in frames(n) {
        chunk.extend_from_slice(b"LOBJ");
        chunk.extend_from_slice(&32u16.to_le_bytes());
        chunk.extend_from_slice(&1u16.to_le_bytes());
        chunk.extend_from_slice(&48u32.to_le_bytes());
        chunk.extend_from_slice(&1u32.to_le_bytes());
        chunk.extend_from_slice(&2u32.to_le_bytes());
        chunk.extend_from_slice(&[0; 4]);
        chunk.extend_from_slice(&(f.t.as_nanos() as u64).to_le_bytes());
        chunk.extend_from_slice(&u16::from(f.channel).to_le_bytes());
        chunk.extend_from_slice(&[0, 8]);
        let id = if f.extended { f.id | 0x8000_0000 } else { f.id };
        chunk.extend_from_slice(&id.to_le_bytes());
        chunk.extend_from_slice(&f.data);
        if chunk.len() >= 128 * 1024 {
            flush(&mut chunk, &mut out);
        }
    }
    if !chunk.is_empty() {
        flush(&mut chunk, &mut out);
    }
}

/// Best of three: frames per second reading `path` to the end.
fn read_rate(path: &Path, n: usize) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let file = std::fs::File::open(path).unwrap();
        let t = Instant::now();
        let mut reader = trace::open(
            BufReader::with_capacity(256 * 1024, file),
            ChannelMap::default(),
        )
        .unwrap();
        let mut count = 0usize;
        for item in reader.by_ref() {
            let f = item.unwrap();
            count += usize::from(f.frame.raw_id() != u32::MAX);
        }
        best = best.min(t.elapsed());
        assert_eq!(count, n, "{}", path.display());
    }
    n as f64 / best.as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("TRACES_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/traces-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            "candump",
            dir.join("big.log"),
            write_candump as fn(&Path, usize),
        ),
        ("ASC", dir.join("big.asc"), write_asc),
        ("BLF", dir.join("big.blf"), write_blf),
    ];
    println!(
        "reading {n} frames, one core, best of 3 (files in {})",
        dir.display()
    );
    for (name, path, write) in &files {
        write(path, n);
        let size = std::fs::metadata(path).unwrap().len();
        let rate = read_rate(path, n);
        println!(
            "{name:>8}: {:>6.2} M frames/s  ({:.1} MB, {:.0} MB/s)",
            rate / 1e6,
            size as f64 / 1e6,
            rate * size as f64 / n as f64 / 1e6
        );
    }
}
