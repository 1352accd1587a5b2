//! Line-parsing tests: VECTORS.md §5 rows, both forms, the writer round trip and garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn frame(line: &str) -> TraceFrame {
    match parse_line(line.as_bytes()) {
        Ok(Line::Frame(f)) => f,
        other => panic!("{line:?}: expected a frame, got {other:?}"),
    }
}

fn micros(m: u64) -> Duration {
    Duration::from_micros(m)
}

// VECTORS.md §5 (cantools tests/test_logreader.py @ c1dcd396).
#[test]
fn vectors_screen_form_without_timestamp() {
    let f = frame("vcan0  0C8   [8]  F0 00 00 00 00 00 00 00");
    assert_eq!(f.timestamp, None);
    assert_eq!(f.interface.as_str(), "vcan0");
    assert_eq!(f.frame.raw_id(), 0xC8);
    assert!(!f.frame.is_extended() && !f.frame.is_fd());
    assert_eq!(f.frame.data(), &[0xF0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn vectors_eight_digit_id_is_extended() {
    let f = frame("  vcan0  00000123   [8]  12 34 56 78 90 AB CD EF");
    assert_eq!(f.frame.raw_id(), 0x123);
    assert!(f.frame.is_extended());
    assert_eq!(
        f.frame.data(),
        &[0x12, 0x34, 0x56, 0x78, 0x90, 0xAB, 0xCD, 0xEF]
    );
}

#[test]
fn vectors_screen_remote_request() {
    let f = frame("  vcan0  00000123   [0]  remote request");
    assert!(f.frame.is_extended() && f.frame.is_remote_frame());
    assert_eq!(f.frame.raw_id(), 0x123);
    assert!(f.frame.data().is_empty());
    let f = frame("  can0  7DF   [3]  remote request");
    assert_eq!(f.frame.dlc(), 3);
}

#[test]
fn vectors_relative_timestamp() {
    let f = frame("(002.047817)  vcan0  064   [8]  F0 01 FF FF FF FF FF FF");
    assert_eq!(f.timestamp, Some(Timestamp::Relative(micros(2_047_817))));
    assert_eq!(f.frame.raw_id(), 0x64);
    assert_eq!(
        f.frame.data(),
        &[0xF0, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
    );
}

#[test]
fn vectors_log_form_absolute() {
    let f = frame("(1579857014.345944) can2 486#82967A6B006B07F8");
    assert_eq!(
        f.timestamp,
        Some(Timestamp::Absolute(micros(1_579_857_014_345_944)))
    );
    assert_eq!(f.interface.as_str(), "can2");
    assert_eq!(f.frame.raw_id(), 0x486);
    assert!(!f.frame.is_extended());
    assert_eq!(
        f.frame.data(),
        &[0x82, 0x96, 0x7A, 0x6B, 0x00, 0x6B, 0x07, 0xF8]
    );
}

#[test]
fn vectors_log_form_fd() {
    let f = frame(
        "(1613656104.501098) can3 14C##155B53476F7B82EEEB8E97236AC252B8BBB5B80A6A7734B2F675C6D2CEEC869D3",
    );
    assert_eq!(f.frame.raw_id(), 0x14C);
    assert!(f.frame.is_fd() && f.frame.is_brs() && !f.frame.is_esi()); // flags nibble 1 = BRS
    assert_eq!(f.frame.data().len(), 32);
    assert_eq!(f.frame.data()[..4], [0x55, 0xB5, 0x34, 0x76]);
    assert_eq!(f.frame.data()[31], 0xD3);
}

#[test]
fn vectors_error_frames_are_skipped() {
    for line in [
        " (000.000000)  vcan0  20000004   [8]  00 04 00 00 00 00 00 00   ERRORFRAME",
        "  vcan0  ERROR",
        "(1594172462.127684) vcan0 ERROR",
        "(1594172462.127684) vcan0 20000080#0000000000000000",
    ] {
        assert_eq!(
            parse_line(line.as_bytes()),
            Ok(Line::Skip(Skip::ErrorFrame)),
            "{line}"
        );
    }
    assert_eq!(parse_line(b"   \r\n"), Ok(Line::Skip(Skip::Blank)));
}

#[test]
fn vectors_channel_names() {
    assert_eq!(frame("vcan-0  0C8   [1]  F0").interface.as_str(), "vcan-0");
    assert_eq!(frame("(0.1) vcan.0 0C8#F0").interface.as_str(), "vcan.0");
}

#[test]
fn screen_form_from_the_real_truck_trace() {
    // First lines of traces/j1939-attack-datasets/normal.log.
    let f = frame(" (000.005001)  can0  18FEDF00   [8]  8A A0 28 7D 7D FF FF F5");
    assert_eq!(f.timestamp, Some(Timestamp::Relative(micros(5_001))));
    assert_eq!(f.frame.raw_id(), 0x18FE_DF00);
    assert_eq!(f.frame.data()[7], 0xF5);
}

#[test]
fn log_form_variants() {
    let f = frame("(1436509052.249713) can0 7E8#0641A6000123\n");
    assert_eq!(f.frame.data(), &[0x06, 0x41, 0xA6, 0x00, 0x01, 0x23]);
    // Remote without and with a DLC.
    let f = frame("(1436509052.249713) can0 7DF#R");
    assert!(f.frame.is_remote_frame());
    assert_eq!(f.frame.dlc(), 0);
    assert_eq!(frame("(1.0) can0 7DF#R4").frame.dlc(), 4);
    // Dotted data, len8_dlc suffix, empty data, direction column.
    assert_eq!(
        frame("(1.0) can0 123#11.22.33").frame.data(),
        &[0x11, 0x22, 0x33]
    );
    assert_eq!(frame("(1.0) can0 123#1122334455667788_C").frame.dlc(), 8);
    assert!(frame("(1.0) can0 123#").frame.data().is_empty());
    assert_eq!(frame("(1.0) can0 123#AB T").frame.data(), &[0xAB]);
    // FD with ESI only, 12 bytes.
    let f = frame("(1.0) can0 00000123##2000102030405060708090A0B");
    assert!(f.frame.is_fd() && f.frame.is_esi() && !f.frame.is_brs() && f.frame.is_extended());
    assert_eq!(f.frame.data().len(), 12);
}

#[test]
fn screen_form_variants() {
    // can-utils prints FD lengths with two digits: `[08]` is an 8-byte FD frame.
    let f = frame("(1613749650.388103)  can1       0AD  [08]  A6 55 3B CF 3F 1A F5 2A");
    assert!(f.frame.is_fd());
    assert_eq!(
        f.timestamp,
        Some(Timestamp::Absolute(micros(1_613_749_650_388_103)))
    );
    // -x columns and -a ascii tail.
    let f = frame(" (000.000001)  can0  RX B -  123  [12]  00 01 02 03 04 05 06 07 08 09 0A 0B");
    assert!(f.frame.is_fd() && f.frame.is_brs() && !f.frame.is_esi());
    let f = frame("  can0  123   [2]  41 42                     'AB'");
    assert_eq!(f.frame.data(), b"AB");
    // candump -t A: date and time, taken as UTC. 2020-12-19 12:04:45 UTC = 1608379485.
    let f = frame("(2020-12-19 12:04:45.485261)  vcan0  0C8   [8]  F0 00 00 00 00 00 00 00");
    assert_eq!(
        f.timestamp,
        Some(Timestamp::Absolute(micros(1_608_379_485_485_261)))
    );
}

#[test]
fn timestamp_digit_rule() {
    // %010 padding makes an early-epoch absolute time 10 digits; relative is %03.
    let t = frame("(0000000012.000001) can0 123#").timestamp.unwrap();
    assert_eq!(t, Timestamp::Absolute(micros(12_000_001)));
    let t = frame("(1234.5) can0 123#").timestamp.unwrap();
    assert_eq!(t, Timestamp::Relative(micros(1_234_500_000)));
    assert_eq!(t.micros(), 1_234_500_000);
}

#[test]
fn garbage_lines_name_the_problem_and_column() {
    use ParseErrorKind as K;
    let table: &[(&str, usize, K)] = &[
        ("(12.5 can0 123#00", 1, K::UnclosedTimestamp),
        ("(abc) can0 123#00", 2, K::BadTimestamp),
        ("(12) can0 123#00", 2, K::BadTimestamp),
        ("(1.0123456789) can0 123#00", 2, K::BadTimestamp),
        ("(2020-13-01 00:00:00.0) can0 123#00", 2, K::BadTimestamp),
        ("(1.0) 123#00", 7, K::MissingInterface),
        ("(1.0)", 6, K::MissingInterface),
        ("(1.0) can0", 11, K::MissingFrame),
        ("(1.0) averyveryverylongname0 123#00", 7, K::BadInterface),
        ("(1.0) can0 1234#00", 12, K::BadIdLength { digits: 4 }),
        ("(1.0) can0 12G#00", 14, K::BadHex { found: 'G' }),
        ("(1.0) can0 123#0", 16, K::OddHexDigits),
        ("(1.0) can0 123#0Z", 17, K::BadHex { found: 'Z' }),
        (
            "(1.0) can0 123#001122334455667788",
            32,
            K::TooManyBytes { max: 8 },
        ),
        ("(1.0) can0 123#R9", 17, K::BadRemoteDlc),
        ("(1.0) can0 123#RR", 17, K::BadRemoteDlc),
        (
            "(1.0) can0 123##1001122334455667788AA",
            18,
            K::BadLength { len: 10, fd: true },
        ),
        ("(1.0) can0 123##", 17, K::BadHex { found: ' ' }),
        (
            "(1.0) can0 C0000000#00",
            12,
            K::IdOutOfRange { id: 0xC000_0000 },
        ),
        ("(1.0) can0 123#00 junk", 19, K::TrailingText),
        ("(1.0) can0 123#0011_3", 20, K::TrailingText),
        ("  can0  123  8  00", 14, K::MissingLength),
        (
            "  can0  123  [9]  00",
            14,
            K::BadLength { len: 9, fd: false },
        ),
        (
            "  can0  123  [10]  00",
            14,
            K::BadLength { len: 10, fd: true },
        ),
        (
            "  can0  123  [3]  00 11",
            24,
            K::LengthMismatch {
                declared: 3,
                found: 2,
            },
        ),
        (
            "  can0  123  [1]  00 11",
            22,
            K::LengthMismatch {
                declared: 1,
                found: 2,
            },
        ),
        ("  can0  123  [2]  00 1", 22, K::BadHex { found: '1' }),
        ("  can0  123  [1]  XY", 19, K::BadHex { found: 'X' }),
        ("  can0  123  [1]  00 what", 22, K::TrailingText),
        ("  can0  hello  [1]  00", 9, K::BadIdLength { digits: 5 }),
    ];
    let mut wrong = Vec::new();
    for (line, column, kind) in table {
        let got = parse_line(line.as_bytes());
        let want = Err(ParseError {
            column: *column,
            kind: kind.clone(),
        });
        if got != want {
            wrong.push(format!("{line:?}: got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The message names what and where.
    let e = parse_line(b"(1.0) can0 12G#00").unwrap_err();
    assert_eq!(e.to_string(), "column 14: expected a hex digit, found 'G'");
}

#[test]
fn non_utf8_and_control_bytes_are_errors_not_panics() {
    assert!(parse_line(b"(1.0) c\xffn0 123#00").is_err());
    assert!(parse_line(b"\xff\xfe").is_err());
    assert!(parse_line(b"(\xc3\xa9) can0 123#00").is_err());
}

#[test]
fn log_line_round_trips() {
    let lines = [
        "(1436509052.249713) can0 7E8#0641A6000123",
        "(1436509052.249713) can0 18FECA00#40FF5B000301FFFF",
        "(1613656104.501098) can3 14C##3000102030405060708090A0B",
        "(1436509052.000000) vcan-0 7DF#R",
        "(1436509052.000000) vcan-0 7DF#R3",
        "(002.047817) vcan0 064#",
    ];
    for line in lines {
        let f = frame(line);
        let out = format_log_line(f.timestamp.unwrap(), f.interface.as_str(), &f.frame);
        assert_eq!(out, line);
    }
}

/// The fuzz target's invariant on candump-like text: no panic, and whatever parses as a frame
/// is written back by `format_log_line` and parses to the same frame.
fn round_trip_holds(line: &str) -> Result<(), String> {
    if let Ok(Line::Frame(f)) = parse_line(line.as_bytes()) {
        let ts = f.timestamp.unwrap_or(Timestamp::Relative(Duration::ZERO));
        let out = format_log_line(ts, f.interface.as_str(), &f.frame);
        match parse_line(out.as_bytes()) {
            Ok(Line::Frame(back))
                if back.frame == f.frame
                    && back.interface == f.interface
                    && back.timestamp.map(Timestamp::micros) == Some(ts.micros()) => {}
            other => return Err(format!("{line:?} → {out:?} → {other:?}")),
        }
    }
    Ok(())
}

proptest::proptest! {
    #[test]
    fn candump_like_text_round_trips(line in "[ (]{0,2}[0-9.]{0,14}[) ]{0,2}[a-z0-9.-]{1,6} {1,2}(RX [B-] [E-] )?[0-9A-Fa-f]{3,8}(#|##|#R|  \\[[0-9]{1,2}\\] )[0-9A-F .#R_]{0,40}") {
        proptest::prop_assert!(round_trip_holds(&line).is_ok(), "{:?}", round_trip_holds(&line));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let _ = parse_line(&bytes);
        let mut reader = TraceReader::new(&bytes[..]);
        for _ in reader.by_ref() {}
        let s = reader.stats();
        proptest::prop_assert_eq!(s.lines, s.frames + s.skipped + s.bad);
    }
}

#[test]
fn generated_frames_round_trip() {
    for line in [
        "  can0  RX B E  123  [12]  00 01 02 03 04 05 06 07 08 09 0A 0B",
        "(2020-12-19 12:04:45.485261)  vcan0  0C8   [8]  F0 00 00 00 00 00 00 00",
        "(0000000012.0) x 1FFFFFFF#R8",
        "can0 1FFFFFFF   [0]  remote request",
        "(999999999.999999999) (x) 7FF#11.22",
    ] {
        round_trip_holds(line).unwrap();
    }
}
