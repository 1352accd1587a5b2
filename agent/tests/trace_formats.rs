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

/// One drive (speed, odometer across 10,000 km, standing still) as `(seconds after
/// 1436509052 = Fri Jul 10 06:17:32 2015 UTC, id, data)`.
fn drive() -> Vec<(f64, u32, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut frame = |t: f64, id: u32, data: [u8; 8]| frames.push((t, id, data.to_vec()));
    frame(0.0, 0x7DF, [2, 1, 0x0D, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC]);
    frame(0.01, 0x7E8, [3, 0x41, 0x0D, 0x32, 0xCC, 0xCC, 0xCC, 0xCC]);
    frame(0.1, 0x7DF, [2, 1, 0xA6, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC]);
    frame(0.11, 0x7E8, [6, 0x41, 0xA6, 0, 1, 0x86, 0x9F, 0xCC]);
    frame(2.0, 0x7DF, [2, 1, 0xA6, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC]);
    frame(2.01, 0x7E8, [6, 0x41, 0xA6, 0, 1, 0x86, 0xA0, 0xCC]);
    for s in 3..=8 {
        frame(
            f64::from(s),
            0x7DF,
            [2, 1, 0x0D, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC],
        );
        frame(
            f64::from(s) + 0.01,
            0x7E8,
            [3, 0x41, 0x0D, 0, 0xCC, 0xCC, 0xCC, 0xCC],
        );
    }
    frames
}

const T0: u64 = 1_436_509_052;

fn hex_bytes(data: &[u8], sep: &str) -> String {
    data.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(sep)
}

fn drive_candump() -> String {
    drive()
        .iter()
        .map(|(t, id, d)| {
            format!(
                "({:.6}) can0 {id:03X}#{}\n",
                T0 as f64 + t,
                hex_bytes(d, "")
            )
        })
        .collect()
}

fn drive_asc(decimal_comma: bool) -> String {
    let mut s = String::from(
        "date Fri Jul 10 06:17:32.000 2015\nbase hex  timestamps absolute\n\
         internal events logged\nBegin Triggerblock Fri Jul 10 06:17:32.000 2015\n   0.000000 Start of measurement\n",
    );
    for (t, id, d) in drive() {
        let mut time = format!("{t:.6}");
        if decimal_comma {
            time = time.replace('.', ",");
        }
        s.push_str(&format!(
            "{time:>11} 1  {id:X}             Rx   d 8 {}\n",
            hex_bytes(&d, " ")
        ));
    }
    s.push_str("End TriggerBlock\n");
    s
}

fn drive_pcapng() -> Vec<u8> {
    use pcap_file::DataLink;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock::new(
        DataLink::CAN_SOCKETCAN,
        0xFFFF,
    ))
    .unwrap();
    for (t, id, d) in drive() {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&[d.len() as u8, 0, 0, 0]);
        p.extend_from_slice(&d);
        // Default resolution: microseconds (pcap-file keeps the raw ticks as nanoseconds).
        let us = T0 * 1_000_000 + (t * 1_000_000.0).round() as u64;
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(us),
            original_len: p.len() as u32,
            data: p.into(),
            options: vec![],
        })
        .unwrap();
    }
    w.into_inner()
}

fn agent() -> std::process::Command {
    rapport_harness::process::bin_command(env!("CARGO_BIN_EXE_rapport-agent"))
}

fn replay_lines(config: &std::path::Path, log: &std::path::Path) -> Vec<String> {
    let out = agent()
        .args(["replay", "--summary", "--config"])
        .arg(config)
        .arg("--log")
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn replay_of_the_same_frames_in_candump_asc_and_pcapng_prints_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let config = rapport_harness::files::repo_file("config/passenger.toml");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let candump = replay_lines(&config, &write("drive.log", drive_candump().as_bytes()));
    // Odometer, speed and prompt lines, then the summary.
    assert!(candump.len() > 4, "{candump:#?}");
    assert!(
        candump.iter().any(|l| l.contains(r#""kind":"prompt""#)),
        "{candump:#?}"
    );
    let body = |lines: &[String]| lines[..lines.len() - 1].to_vec();
    for (name, bytes) in [
        ("drive.asc", drive_asc(false).into_bytes()),
        ("drive-comma.asc", drive_asc(true).into_bytes()),
        ("drive.pcapng", drive_pcapng()),
    ] {
        let other = replay_lines(&config, &write(name, &bytes));
        assert_eq!(body(&other), body(&candump), "{name}");
        let summary: serde_json::Value = serde_json::from_str(other.last().unwrap()).unwrap();
        assert_eq!(summary["frames"], 18, "{name}");
        assert_eq!(summary["bad_lines"], 0, "{name}");
    }
}

#[test]
fn trace_convert_writes_candump_frame_for_frame() {
    let dir = tempfile::tempdir().unwrap();
    let asc = dir.path().join("in.asc");
    std::fs::write(&asc, drive_asc(true)).unwrap();
    let out = dir.path().join("out.log");
    let run = agent()
        .args(["trace", "convert"])
        .arg(&asc)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("ASC trace, 18 frames written"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), drive_candump());

    // A channel mapped by config: trace_channel = 1 on a bus named vcan9.
    let mut c = rapport_harness::agent::passenger().unwrap();
    c.can.buses[0].interface = "vcan9".into();
    c.can.buses[0].trace_channel = Some(1);
    let config = rapport_harness::agent::write(&c, dir.path()).unwrap();
    let pcap = dir.path().join("in.pcapng");
    std::fs::write(&pcap, drive_pcapng()).unwrap();
    let run = agent()
        .args(["trace", "convert", "--config"])
        .arg(&config)
        .arg(&pcap)
        .arg("-")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8(run.stdout).unwrap(),
        drive_candump().replace(" can0 ", " vcan9 ")
    );

    // Bad records are reported with their line and skipped; the rest is converted.
    let bad = dir.path().join("bad.asc");
    let mut text = drive_asc(false);
    text = text.replacen("Rx   d 8 02 01 0D", "Rx   d 8 02 01 0Z", 1);
    std::fs::write(&bad, text).unwrap();
    let run = agent()
        .args(["trace", "convert"])
        .arg(&bad)
        .arg("-")
        .output()
        .unwrap();
    assert!(run.status.success());
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("ASC line 6: data byte"), "{stderr}");
    assert_eq!(String::from_utf8(run.stdout).unwrap().lines().count(), 17);
}

#[test]
fn check_config_refuses_bad_trace_channels() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = rapport_harness::agent::passenger().unwrap();
    let mut second = c.can.buses[0].clone();
    second.name = "body".into();
    second.interface = "can1".into();
    // The first bus is channel 1 by position; the second claims channel 1 too.
    second.trace_channel = Some(1);
    c.can.buses.push(second);
    let config = rapport_harness::agent::write(&c, dir.path()).unwrap();
    let out = agent()
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("can.buses[1].trace_channel: trace channel 1 is also bus 0's"),
        "{stderr}"
    );

    c.can.buses[1].trace_channel = Some(0);
    let config = rapport_harness::agent::write(&c, dir.path()).unwrap();
    let out = agent()
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("trace_channel: channels count from 1"),
        "{stderr}"
    );

    c.can.buses[1].trace_channel = Some(2);
    let config = rapport_harness::agent::write(&c, dir.path()).unwrap();
    let out = agent()
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
