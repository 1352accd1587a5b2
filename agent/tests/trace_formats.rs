//! Our ASC, BLF and TRC readers against python-can, frame for frame.
//!
//! The traces are python-can's test files in `shared/data/traces/python-can/` (never copied
//! here) and three of our own that python-can's writers made (`tests/fixtures/python-can/
//! written.*`); what python-can reads from each was dumped once into `<file>.jsonl` by
//! `tests/fixtures/python_can_expected.py`.
//!
//! Differences on purpose, each checked rather than ignored:
//! - python-can yields error frames as messages; we count them as skipped (as for candump);
//! - python-can numbers ASC and BLF channels from 0, TRC from 1; we name channel N `can{N-1}`;
//! - a record python-can yields but no CAN bus can carry (an 11-bit id above 0x7FF, a remote
//!   CAN FD frame: python-can's BLF test files are made of such patterns) is an error of ours
//!   naming its position;
//! - a remote request on an ASC `CANFD` line is a classic remote frame here (CAN FD has none).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::BufReader;
use std::path::PathBuf;

use core::time::Duration;

use rapport_agent::can::candump::{Timestamp, TraceFrame, format_log_line};
use rapport_agent::can::trace::{self, ChannelMap, Format, Position, ReadError};

fn shared(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/traces/python-can/"
    ))
    .join(name)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/python-can/"
    ))
    .join(name)
}

#[derive(Debug, serde::Deserialize)]
struct Expected {
    timestamp_us: u64,
    channel: u32,
    id: u32,
    extended: bool,
    remote: bool,
    fd: bool,
    brs: bool,
    esi: bool,
    dlc: usize,
    data: String,
    is_error_frame: bool,
}

impl Expected {
    /// What `candump -l` writes after the interface for this frame.
    fn candump_body(&self) -> String {
        let id = if self.extended {
            format!("{:08X}", self.id)
        } else {
            format!("{:03X}", self.id)
        };
        if self.remote {
            return match self.dlc {
                0 => format!("{id}#R"),
                n => format!("{id}#R{n}"),
            };
        }
        let data = self.data.to_uppercase();
        if self.fd {
            let flags = u8::from(self.brs) | (u8::from(self.esi) << 1);
            format!("{id}##{flags:X}{data}")
        } else {
            format!("{id}#{data}")
        }
    }

    /// Whether a CAN bus can carry this frame (python-can's BLF test patterns cannot).
    fn carriable(&self) -> bool {
        (self.extended || self.id <= 0x7FF) && !(self.remote && self.fd && self.dlc > 8)
    }
}

fn read(path: &std::path::Path) -> (Format, Vec<Result<TraceFrame, ReadError>>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = trace::open(BufReader::new(file), ChannelMap::default()).unwrap();
    let items: Vec<_> = reader.by_ref().collect();
    (reader.format(), items)
}

/// Compares one file; returns (frames matched, errors matched).
fn compare(path: PathBuf, expected_name: &str, want: Format) -> (usize, usize) {
    let text = std::fs::read_to_string(fixture(&format!("{expected_name}.jsonl"))).unwrap();
    let expected: Vec<Expected> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Expected| !e.is_error_frame)
        .collect();
    let (format, items) = read(&path);
    assert_eq!(format, want, "{expected_name}");
    assert_eq!(items.len(), expected.len(), "{expected_name}: {items:#?}");
    let (mut frames, mut errors) = (0, 0);
    for (i, (got, exp)) in items.iter().zip(&expected).enumerate() {
        let at = format!("{expected_name} message {i}: {exp:?}");
        if !exp.carriable() {
            assert!(
                matches!(
                    got,
                    Err(ReadError::Record {
                        at: Position::Byte(_) | Position::Line(_),
                        ..
                    })
                ),
                "{at}: {got:?}"
            );
            errors += 1;
            continue;
        }
        let got = got.as_ref().unwrap_or_else(|e| panic!("{at}: {e}"));
        let f = &got.frame;
        let us = got.timestamp.map(Timestamp::micros).unwrap();
        assert!(
            us.abs_diff(exp.timestamp_us) <= 1,
            "{at}: timestamp {us} µs"
        );
        let channel = match want {
            Format::Trc => exp.channel - 1,
            _ => exp.channel,
        };
        assert_eq!(got.interface.as_str(), format!("can{channel}"), "{at}");
        // The frame as candump writes it: id, remote DLC, FD flags (BRS, ESI) and data.
        let line = format_log_line(Timestamp::Relative(Duration::ZERO), "can0", f);
        let body = line.rsplit(' ').next().unwrap();
        assert_eq!(body, exp.candump_body(), "{at}");
        frames += 1;
    }
    (frames, errors)
}

#[test]
fn asc_files_read_as_python_can_reads_them() {
    assert_eq!(
        compare(shared("logfile.asc"), "logfile.asc", Format::Asc),
        (16, 0)
    );
    assert_eq!(
        compare(
            shared("test_CanErrorFrames.asc"),
            "test_CanErrorFrames.asc",
            Format::Asc
        ),
        (0, 0)
    );
    assert_eq!(
        compare(
            shared("test_CanFdMessage.asc"),
            "test_CanFdMessage.asc",
            Format::Asc
        ),
        (3, 0)
    );
    assert_eq!(
        compare(
            shared("test_CanMessage.asc"),
            "test_CanMessage.asc",
            Format::Asc
        ),
        (2, 0)
    );
    assert_eq!(
        compare(fixture("written.asc"), "written.asc", Format::Asc),
        (6, 0)
    );
}

#[test]
fn asc_error_frames_are_counted_as_skipped() {
    let file = std::fs::File::open(shared("test_CanErrorFrames.asc")).unwrap();
    let mut reader = trace::open(BufReader::new(file), ChannelMap::default()).unwrap();
    assert_eq!(reader.by_ref().count(), 0);
    let stats = reader.stats();
    // 4 error frames, the header lines and `Start of measurement`, nothing bad.
    assert_eq!((stats.frames, stats.bad), (0, 0));
    assert!(stats.skipped >= 4, "{stats:?}");
}

#[test]
fn blf_files_read_as_python_can_reads_them() {
    // python-can's two BLF test files hold byte patterns (0x11111111…) that no CAN bus carries:
    // each is an error of ours at its container's offset.
    assert_eq!(
        compare(
            shared("test_CanMessage.blf"),
            "test_CanMessage.blf",
            Format::Blf
        ),
        (0, 2)
    );
    assert_eq!(
        compare(
            shared("test_CanFdMessage64.blf"),
            "test_CanFdMessage64.blf",
            Format::Blf
        ),
        (0, 2)
    );
    // Our own frames through python-can's BLF writer (zlib-compressed containers).
    assert_eq!(
        compare(fixture("written.blf"), "written.blf", Format::Blf),
        (6, 0)
    );
}

#[test]
fn trc_files_read_as_python_can_reads_them() {
    assert_eq!(
        compare(
            shared("test_CanMessage.trc"),
            "test_CanMessage.trc",
            Format::Trc
        ),
        (2, 0)
    );
    assert_eq!(
        compare(
            shared("test_CanMessage_V1_1.trc"),
            "test_CanMessage_V1_1.trc",
            Format::Trc
        ),
        (11, 0)
    );
    assert_eq!(
        compare(fixture("written.trc"), "written.trc", Format::Trc),
        (3, 0)
    );
}

#[test]
fn blf_pattern_errors_name_the_container_offset() {
    let (_, items) = read(&shared("test_CanMessage.blf"));
    let err = items.into_iter().next().unwrap().unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("BLF byte 144: "), "{text}");
}
